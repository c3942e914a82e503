# One command per job; each creates .venv and installs requirements.txt when needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup test demo app lint format

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing requirements.txt into $(VENV): PyTorch (with its CUDA libraries, which"
	@echo "serve CPU-only machines too), torchvision, timm, OpenCV, onnxruntime, gradio and the"
	@echo "test tools; about 6.4 GB on disk, mostly PyTorch's CUDA wheels. Downloads show progress."
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar on -r requirements.txt
	@echo "Installed into $(VENV)."
	touch $@

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -n auto --dist loadfile --durations=10

demo: setup
	$(PY) test.py --video asset/sample/sample.mp4 --output_dir output
	@echo "Score the masks against the sample's ground truth (asset/sample/gt/sample/):"
	@echo "  $(PY) test_scripts/test_for_davis.py --gt_path asset/sample/gt --result_path output/MTNet/UVOS_videos --videos sample"

app: setup
	$(PY) app.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
