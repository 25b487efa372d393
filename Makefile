# Set-up and everyday commands. Every target creates or reuses the virtual
# environment in $(VENV) first, so a fresh clone needs nothing else.
VENV ?= .venv
PY := $(VENV)/bin/python
SRC := mmseg_ecotta tools tests configs

.PHONY: demo test lint format checkpoints dev-checkpoints \
	dev-checkpoints-r18-d8 dev-checkpoints-segformer-b0 dev-benchmark \
	dev-updates

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

## demo: the main job on the embedded synthetic stream
demo: $(VENV)/.installed
	$(PY) tools/run_main_job.py

## test: lint, then the test suite
test: lint
	$(PY) -m pytest -q

## lint: isort + yapf + flake8, OpenMMLab style (read-only)
lint: $(VENV)/.installed
	$(PY) -m isort --check-only --diff $(SRC)
	$(PY) -m yapf --diff --recursive $(SRC)
	$(PY) -m flake8 $(SRC)

## format: rewrite files in place to pass lint
format: $(VENV)/.installed
	$(PY) -m isort $(SRC)
	$(PY) -m yapf --in-place --recursive $(SRC)

## checkpoints: regenerate the shipped tiny source + warm-up checkpoints
SOURCE_CFG := configs/deeplabv3plus/deeplabv3plus_r18-tiny_1xb8-3k_synthetic-128x256.py
WARMUP_CFG := configs/ecotta/ecotta-warmup_deeplabv3plus_r18-tiny-meta_1xb8-1500_synthetic-128x256.py
checkpoints: $(VENV)/.installed
	$(PY) tools/make_synthetic_stream.py --out data/synthetic
	$(PY) tools/train.py $(SOURCE_CFG) --work-dir work_dirs/tiny_source
	$(PY) tools/publish_checkpoint.py work_dirs/tiny_source/iter_3000.pth \
		data/checkpoints/deeplabv3plus_r18-tiny_synthetic-source.pth
	$(PY) tools/train.py $(WARMUP_CFG) --work-dir work_dirs/tiny_warmup
	$(PY) tools/publish_checkpoint.py work_dirs/tiny_warmup/iter_1500.pth \
		data/checkpoints/deeplabv3plus_r18-tiny_meta_synthetic-warmup.pth

## dev-checkpoints: regenerate the shipped CamVid source + warm-up checkpoints
## (needs data/camvid: data/README.md, "The real-image dev benchmark")
DEV_SOURCE_CFG := configs/deeplabv3plus/deeplabv3plus_r18-tiny_1xb8-1500_camvid-240x320.py
DEV_WARMUP_CFG := configs/ecotta/ecotta-warmup_deeplabv3plus_r18-tiny-meta_1xb8-1200_camvid-240x320.py
dev-checkpoints: $(VENV)/.installed
	$(PY) tools/train.py $(DEV_SOURCE_CFG) --work-dir work_dirs/camvid_source
	$(PY) tools/publish_checkpoint.py work_dirs/camvid_source/iter_1500.pth \
		data/checkpoints/deeplabv3plus_r18-tiny_camvid-source.pth
	$(PY) tools/train.py $(DEV_WARMUP_CFG) --work-dir work_dirs/camvid_warmup
	$(PY) tools/publish_checkpoint.py work_dirs/camvid_warmup/iter_1200.pth \
		data/checkpoints/deeplabv3plus_r18-tiny_camvid-meta-warmup.pth

## dev-checkpoints-r18-d8: the stock-width DeepLabV3+ R18-D8 source and its
## warm-up for the dev benchmark (about 50 min on 2 idle CPU cores; not
## committed: 48 MiB each)
D8_SOURCE_CFG := configs/deeplabv3plus/deeplabv3plus_r18-d8_1xb8-800_camvid-240x320.py
D8_WARMUP_CFG := configs/ecotta/ecotta-warmup_deeplabv3plus_r18-d8-meta_1xb8-400_camvid-240x320.py
dev-checkpoints-r18-d8: $(VENV)/.installed
	$(PY) tools/train.py $(D8_SOURCE_CFG) --work-dir work_dirs/camvid_source_r18-d8
	$(PY) tools/publish_checkpoint.py work_dirs/camvid_source_r18-d8/iter_800.pth \
		data/checkpoints/deeplabv3plus_r18-d8_camvid-source.pth
	$(PY) tools/train.py $(D8_WARMUP_CFG) --work-dir work_dirs/camvid_warmup_r18-d8
	$(PY) tools/publish_checkpoint.py work_dirs/camvid_warmup_r18-d8/iter_400.pth \
		data/checkpoints/deeplabv3plus_r18-d8_camvid-meta-warmup.pth

## dev-checkpoints-segformer-b0: the dev benchmark's SegFormer-B0 source and
## its EcoTTA warm-up (not committed)
B0_SOURCE_CFG := configs/segformer/segformer_mit-b0_1xb8-800_camvid-240x320.py
B0_WARMUP_CFG := configs/ecotta/ecotta-warmup_segformer_mit-b0-meta_1xb8-400_camvid-240x320.py
dev-checkpoints-segformer-b0: $(VENV)/.installed
	$(PY) tools/train.py $(B0_SOURCE_CFG) --work-dir work_dirs/camvid_source_segformer-b0
	$(PY) tools/publish_checkpoint.py work_dirs/camvid_source_segformer-b0/iter_800.pth \
		data/checkpoints/segformer_mit-b0_camvid-source.pth
	$(PY) tools/train.py $(B0_WARMUP_CFG) --work-dir work_dirs/camvid_warmup_segformer-b0
	$(PY) tools/publish_checkpoint.py work_dirs/camvid_warmup_segformer-b0/iter_400.pth \
		data/checkpoints/segformer_mit-b0_camvid-meta-warmup.pth

## dev-updates: what EcoTTA's test-time updates add, at both widths: the
## update rows on the select frames (s3, s5; tiny model), then with and
## without updates on the report frames and the held-out corruption family
dev-updates: $(VENV)/.installed
	$(PY) tools/run_dev_benchmark.py --split select --updates
	$(PY) tools/run_dev_benchmark.py --split select --severity 5 --updates
	$(PY) tools/run_dev_benchmark.py --updates
	$(PY) tools/run_dev_benchmark.py --updates --heldout
	$(PY) tools/run_dev_benchmark.py --updates --model r18-d8
	$(PY) tools/run_dev_benchmark.py --updates --heldout --model r18-d8

## dev-benchmark: every method on the real-image dev benchmark (report
## frames, s3), then the EcoTTA ablation on the three selection streams:
## the select frames (s3, s5) and held-out synthetic scenes, scored by the
## selection rule
dev-benchmark: $(VENV)/.installed
	$(PY) tools/run_dev_benchmark.py --cotta
	$(PY) tools/run_dev_benchmark.py --split select --ablation
	$(PY) tools/run_dev_benchmark.py --split select --severity 5 --ablation
	$(PY) tools/run_dev_benchmark.py --synthetic-select
	$(PY) tools/run_dev_benchmark.py --selection
