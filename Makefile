# fmnist-edge: every step a user or CI runs, from a fresh machine with Python 3.11.
#   make all    venv → train both MLPs → export bundles → classify test PNGs → benchmark report
#   make test   venv → ruff → mypy → pytest, then the device suites again in an edge-only
#               venv (no TensorFlow; LiteRT, tflite-runtime, onnxruntime)
# Fashion-MNIST is read from $FMNIST_DATA_DIR, then the user cache, then downloaded.
# Beside this checkout, ../shared/data/fashion-mnist (read-only) is used when it exists.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EDGE_VENV ?= .venv-edge
OUT ?= artifacts
SHARED_DATA := $(wildcard $(CURDIR)/../shared/data/fashion-mnist)
ifeq ($(strip $(FMNIST_DATA_DIR)),)
ifneq ($(SHARED_DATA),)
export FMNIST_DATA_DIR := $(abspath $(SHARED_DATA))
endif
endif

.PHONY: all install train export classify bench test browser lint typecheck pytest test-edge \
	bundles segmenter pi-check wheel clean

all: install train export classify bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Strict editable mode installs a link tree, so mypy sees the fmnist_edge.* namespace.
install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[all]' --config-settings editable_mode=strict

train:
	$(BIN)/fmnist-train -o $(OUT)

export:
	$(BIN)/fmnist-export -a $(OUT) -o $(OUT)

classify:
	$(BIN)/python -m fmnist_edge.edge.dataset_pngs -o $(OUT)/test-png --limit 20
	$(BIN)/edge-classify $(OUT)/test-png --model $(OUT)/bundles/first --top-k 2

bench:
	$(BIN)/edge-bench $(OUT)/bundles/first $(OUT)/bundles/second -o $(OUT)/benchmark
	$(BIN)/fmnist-compare -a $(OUT) -o $(OUT)/benchmark

test: install browser lint typecheck pytest test-edge

# The edge-serve page test drives Debian's headless chromium through its chromedriver
# (selenium downloads nothing). Installed here when missing and we are root (as in CI).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver >/dev/null; \
	else echo "the browser test needs: sudo apt-get install chromium chromium-driver" >&2; \
		exit 1; fi

lint:
	$(BIN)/ruff check .

typecheck:
	$(BIN)/mypy -p fmnist_edge.edge -p fmnist_edge.train -p fmnist_edge.export \
		-p fmnist_edge.benchmarks

pytest:
	$(BIN)/pytest -q

# What a Raspberry Pi installs, nothing more (plus pytest, and prometheus-client to parse
# /metrics): proves the device path and edge-serve work without TensorFlow and with
# tflite-runtime too. Training/export suites and the browser test skip themselves.
test-edge:
	$(PYTHON) -m venv $(EDGE_VENV)
	$(EDGE_VENV)/bin/python -m pip install --quiet --upgrade pip
	rm -rf build/lib  # a stale build tree would leak old modules into the wheel
	$(EDGE_VENV)/bin/pip install --quiet '.[tflite-runtime,onnx,camera,serve]' pytest \
		prometheus-client
	! $(EDGE_VENV)/bin/python -c "import tensorflow" 2>/dev/null
	$(EDGE_VENV)/bin/pytest -q -p no:cacheprovider

# The package a Raspberry Pi installs (fmnist-edge is not on PyPI): dist/fmnist_edge-*.whl,
# pure Python with the shipped bundles, segmenter and serve page inside; copy it to the Pi.
wheel: $(BIN)/python
	rm -rf build/lib  # a stale build tree would leak old modules into the wheel
	$(BIN)/python -m pip wheel --no-deps --quiet -w dist .

# Regenerate the int8 bundles shipped inside the package (edge/bundles/): the photo recipe
# (renders cached in ~/.cache/fmnist-edge/renders; first run renders for ~10 CPU-minutes).
# One TensorFlow thread: that is how the shipped bundles were trained, and it reproduces them
# (.tflite and .onnx byte for byte); more threads sum in another order and give other weights.
bundles: install
	TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 $(BIN)/fmnist-train --recipe photo -o $(OUT)/photo
	$(BIN)/fmnist-export -a $(OUT)/photo -o $(OUT)/shipped --int8
	rm -rf edge/bundles && mkdir -p edge/bundles
	cp -r $(OUT)/shipped/bundles/first $(OUT)/shipped/bundles/second edge/bundles/

# Retrain the learned garment segmenter shipped inside the package (edge/segmenter/, pipeline
# segment-4): 28,000 seeded renders of training images (cached in ~/.cache/fmnist-edge/renders;
# about 10 CPU-minutes the first time), 4 epochs on one TensorFlow thread (about 15 minutes),
# exported to float32 TFLite and ONNX and checked against Keras.  The bundles need no retraining
# after it: they learn from segment-3's cut-outs (photo.TRAINING_METHOD), and the default
# pipeline (photo.PIPELINE_VERSION) asks them about every segmenter's cut-out.
segmenter: install
	TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 $(BIN)/fmnist-segmenter -o $(OUT)/segmenter
	rm -rf edge/segmenter && mkdir -p edge/segmenter
	cp $(OUT)/segmenter/* edge/segmenter/

# Proof for every Raspberry Pi (not part of `make test`: minutes, needs root): the wheel
# installed the README's way into emulated Debian bookworm armhf (Debian's numpy, numpy
# runtime) and arm64 (PyPI wheels, LiteRT) roots; answers compared with this machine.
# Roots are made once in $(PI_ROOTS) (6-11 min each) and reused; then 2-4 min.
PI_ROOTS ?= /var/tmp/fmnist-edge-pi-roots
pi-check: install
	@test "$$(id -u)" = 0 || { echo "pi-check needs root (debootstrap, chroot)"; exit 1; }
	command -v debootstrap >/dev/null && test -e /usr/libexec/qemu-binfmt/arm-binfmt-P \
		|| { apt-get update -qq && apt-get install -y -qq qemu-user-static debootstrap \
		binfmt-support; }
	$(BIN)/python -m fmnist_edge.benchmarks.pi_check --roots $(PI_ROOTS) -o $(OUT)/pi-check

clean:
	rm -rf $(VENV) $(EDGE_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
