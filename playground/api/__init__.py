"""An OpenAI-compatible HTTP API (``serve --api``): chat completions with per-request persona, steering and
guard, and each streamed chunk carrying the token's probe readouts."""
