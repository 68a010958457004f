# Two commands do everything on a fresh machine (see README.md):
#   make main   installs, then evaluates and trains the release model: the general Gen-SER model on every emotion
#               corpus in ../shared with Whisper base (training/configs/main_job.json)
#   make test   installs (with Chromium for the browser test), then runs the test suite
#   make space  assembles outputs/space, the folder to upload as a Hugging Face Space
PYTHON ?= python3

.PHONY: install main test space

install:
	@command -v ffmpeg >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg)
	# torchaudio pins torch exactly; name both so pip never resolves a second torch.
	$(PYTHON) -m pip install -q torch==2.11.0 torchaudio==2.11.0
	$(PYTHON) -m pip install -q -e ".[dev]"

main: install
	$(PYTHON) -m training.run_genser training/configs/main_job.json

test: install
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)
	$(PYTHON) -m pytest tests

space:
	rm -rf outputs/space && mkdir -p outputs/space
	cp -r spaces_demo/. modeling_genser pipelines outputs/space/
	find outputs/space -name __pycache__ -prune -exec rm -rf {} +
