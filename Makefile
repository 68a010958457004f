# Two commands do everything on a fresh machine (see README.md):
#   make main   installs, then trains and evaluates Gen-SER on the embedded synthetic corpus (no network)
#   make test   installs, then runs the test suite
PYTHON ?= python3

.PHONY: install main test

install:
	@command -v ffmpeg >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg)
	# torchaudio pins torch exactly; name both so pip never resolves a second torch.
	$(PYTHON) -m pip install -q torch==2.11.0 torchaudio==2.11.0
	$(PYTHON) -m pip install -q -e ".[dev]"

main: install
	$(PYTHON) -m training.run_genser training/configs/synthetic_demo.json

test: install
	$(PYTHON) -m pytest tests
