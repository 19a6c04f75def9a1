# glow-tf: `make train` and `make test` do every set-up step on a fresh machine, then run.
# Each install step is skipped when it is already done, so a second call starts in seconds.
#
#   make train                 install if needed, then train a small Glow on Fashion-MNIST (CPU)
#   make test                  install if needed, then run the whole test suite
#   make install               only the install
#   make bench                 run the benchmarks in bench/
#   make demo                  serve the interactive demo of make train's model on http://127.0.0.1:5050/
#   make TF_VARIANT=cpu|cuda   force the TensorFlow build (default: cuda when nvidia-smi sees a GPU)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TF_VERSION := 2.21.0
TF_VARIANT ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo cuda || echo cpu)
ifeq ($(TF_VARIANT),cuda)
TF_PKG := tensorflow[and-cuda]==$(TF_VERSION)
else
TF_PKG := tensorflow-cpu==$(TF_VERSION)
endif
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
CHROMEDRIVER := /usr/bin/chromedriver
SSHD := /usr/sbin/sshd
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(VENV)/.glow-tf-installed-$(TF_VARIANT)
PYTEST_ARGS ?=
DEMO_ARGS ?=

export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0

.PHONY: install train test bench demo gpu-check clean-venv

install: $(STAMP) $(FASHION_MNIST) $(CHROMEDRIVER) $(SSHD)

$(STAMP): requirements.txt pyproject.toml scripts/install_horovod.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TF_PKG)" -r requirements.txt
	@# Only foolbox's bundled sample images are used (real CIFAR-10 / ImageNet pictures for tests).
	$(PY) -m pip install -q --no-deps foolbox==3.3.4
	scripts/install_horovod.sh $(PY)
	@# glow_tf, data_loaders and tfrecords_tools importable from anywhere, editable from this checkout.
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

# Real data that installs offline: the full Fashion-MNIST from Debian (the default training data).
$(FASHION_MNIST):
	$(SUDO) apt-get update -q
	$(SUDO) apt-get install -y -q dataset-fashion-mnist

# Headless Chromium and its WebDriver, for the demo's browser tests.
$(CHROMEDRIVER):
	$(SUDO) apt-get update -q
	$(SUDO) apt-get install -y -q chromium chromium-driver

# An sshd for the multi-host tests' namespace hosts (scripts/local_cluster.sh); nothing starts it as a service.
$(SSHD):
	$(SUDO) apt-get update -q
	$(SUDO) apt-get install -y -q -o DPkg::Lock::Timeout=300 openssh-server

# One thread per op and the batch as concurrent sub-batches (glow_tf.model.concurrent_batch_parts): on a
# CPU with few cores this small model trains much faster than with TF's default threads (README, "Threads").
train: install
	TF_NUM_INTRAOP_THREADS=1 $(PY) train.py --problem fashion_mnist --preset fashion_small --logdir logs/fashion_small

test: install
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

demo: install
	@test -d logs/fashion_small || { echo "make demo: no model in logs/fashion_small; run make train first" >&2; exit 2; }
	$(PY) -m glow_tf.tools.demo logs/fashion_small $(DEMO_ARGS)

bench: install
	$(PY) bench/model_step.py
	$(PY) bench/train_step.py
	$(PY) bench/reader.py
	$(PY) bench/resume.py

gpu-check:
	bench/gpu_check.sh

clean-venv:
	rm -rf $(VENV)
