"""The designer's fingerprint's history (the measurement itself runs on the real model in tests/test_browser.py:
saved twice, the second save with more humorous steering reads as more humorous)."""

from __future__ import annotations

import dataclasses

from playground.chat.fingerprint import KEEP, Fingerprint, FingerprintHistory, persona_digest
from playground.chat.session import Playground


def _fp(value: float, when: float) -> Fingerprint:
    return Fingerprint("pirate", "tiny", {"evil": value}, {"x": value, "y": 0.0, "nearest": ["a"]}, 8, "d", when)


def test_each_save_is_recorded_and_the_previous_one_comes_back(tmp_path):
    history = FingerprintHistory("tiny", root=tmp_path)
    assert history.record(_fp(0.1, 1.0)) is None  # the first measurement has nothing before it
    previous = history.record(_fp(0.7, 2.0))
    assert previous == _fp(0.1, 1.0)
    for i in range(KEEP + 5):
        history.record(_fp(float(i), 10.0 + i))
    kept = history.load("pirate")
    assert len(kept) == KEEP and kept[-1].probes == {"evil": float(KEEP + 4)}  # the newest, oldest dropped


def test_a_damaged_history_is_set_aside_and_never_blocks_a_save(tmp_path):
    history = FingerprintHistory("tiny", root=tmp_path)
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "pirate.json").write_text("{not json", encoding="utf-8")
    assert history.record(_fp(0.3, 1.0)) is None
    assert (tmp_path / "tiny" / "pirate.damaged.json").read_text(encoding="utf-8") == "{not json"
    assert history.load("pirate") == [_fp(0.3, 1.0)]


def test_the_digest_names_the_version_measured():
    pg = Playground()  # the catalog only: nothing is loaded
    pirate = pg.catalog.persona("pirate")
    same = persona_digest(pg, pirate) == persona_digest(pg, dataclasses.replace(pirate))
    steered = persona_digest(pg, dataclasses.replace(pirate, steering={"humorous": 1.0}))
    prompted = persona_digest(pg, dataclasses.replace(pirate, system_prompt=pirate.system_prompt + " Be brief."))
    assert same and len({persona_digest(pg, pirate), steered, prompted}) == 3
    assert pg._backend is None
