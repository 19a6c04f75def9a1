# glow-tf: `make train` and `make test` do every set-up step on a fresh machine, then run.
# Each install step is skipped when it is already done, so a second call starts in seconds.
#
#   make train                 install if needed, then train a small Glow on Fashion-MNIST (CPU)
#   make test                  install if needed, then run the whole test suite
#   make install               only the install
#   make bench                 run the benchmarks in bench/
#   make demo                  serve the interactive demo of make train's model on http://127.0.0.1:5050/
#   make TF_VARIANT=cpu|cuda   force the TensorFlow build (default: cuda when nvidia-smi sees a GPU)
#   make VENV=DIR ...          install into (and run from) another venv, e.g. VENV=.venv-cuda
#   make wheelhouse            download into wheelhouse-$(TF_VARIANT)/ (or WHEELHOUSE=DIR) everything make
#                              install needs, Horovod's source archive included (for machines without internet)
#   make install WHEELHOUSE=DIR   install from that folder only (pip --no-index)
#   make gpu-check             on a GPU machine: install the CUDA build, run the GPU tests and benchmarks

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TF_VERSION := 2.21.0
TF_VARIANT ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo cuda || echo cpu)
ifeq ($(TF_VARIANT),cuda)
TF_PKG := tensorflow[and-cuda]==$(TF_VERSION)
OTHER_TF := tensorflow-cpu
else
TF_PKG := tensorflow-cpu==$(TF_VERSION)
OTHER_TF := tensorflow
endif
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
CHROMEDRIVER := /usr/bin/chromedriver
SSHD := /usr/sbin/sshd
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(VENV)/.glow-tf-installed-$(TF_VARIANT)
# Offline: every pip install reads the wheelhouse only.
WHEELHOUSE ?=
PIP_FROM := $(if $(WHEELHOUSE),--no-index --find-links $(abspath $(WHEELHOUSE)),)
# A fresh cloud machine's unattended upgrades hold the dpkg lock for minutes after boot: wait for it.
APT_GET := $(SUDO) apt-get -o DPkg::Lock::Timeout=900
PYTEST_ARGS ?=
DEMO_ARGS ?=

export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0

.PHONY: install train test bench demo gpu-check clean-venv wheelhouse

install: $(STAMP) $(FASHION_MNIST) $(CHROMEDRIVER) $(SSHD)

$(STAMP): requirements.txt pyproject.toml scripts/install_horovod.sh scripts/install_lib.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# One TensorFlow per venv: tensorflow-cpu and tensorflow[and-cuda] installed together break each other.
	@if $(PY) -m pip show -q $(OTHER_TF) >/dev/null 2>&1; then \
	  echo "make install: $(VENV) holds $(OTHER_TF), not TF_VARIANT=$(TF_VARIANT)'s TensorFlow: choose another VENV (e.g. VENV=.venv-$(TF_VARIANT)) or make clean-venv" >&2; exit 2; fi
	$(PY) -m pip install -q $(PIP_FROM) --upgrade pip
	$(PY) -m pip install -q $(PIP_FROM) "$(TF_PKG)" -r requirements.txt
	@# Only foolbox's bundled sample images are used (real CIFAR-10 / ImageNet pictures for tests).
	$(PY) -m pip install -q $(PIP_FROM) --no-deps foolbox==3.3.4
	WHEELHOUSE="$(WHEELHOUSE)" scripts/install_horovod.sh $(PY)
	@# glow_tf, data_loaders and tfrecords_tools importable from anywhere, editable from this checkout.
	$(PY) -m pip install -q $(PIP_FROM) --no-deps -e .
	@touch $@

# Real data that installs offline: the full Fashion-MNIST from Debian (the default training data). Offline,
# from the .deb that make wheelhouse saved; without it, train.py still trains on the other problems.
$(FASHION_MNIST):
ifeq ($(WHEELHOUSE),)
	$(APT_GET) update -q
	$(APT_GET) install -y -q dataset-fashion-mnist
else
	@deb=$$(ls $(WHEELHOUSE)/debs/dataset-fashion-mnist_*.deb 2>/dev/null | head -n 1); \
	if [ -n "$$deb" ]; then $(APT_GET) install -y -q "$$(realpath $$deb)"; \
	else echo "make install: no dataset-fashion-mnist .deb in $(WHEELHOUSE)/debs: --problem fashion_mnist (make train) will not find its data; other problems train"; fi
endif

# Headless Chromium and its WebDriver, for the demo's browser tests (skipped without them).
$(CHROMEDRIVER):
ifeq ($(WHEELHOUSE),)
	$(APT_GET) update -q
	$(APT_GET) install -y -q chromium chromium-driver
else
	@echo "make install: chromium and chromium-driver are not installed offline: the demo's browser tests will skip"
endif

# An sshd for the multi-host tests' namespace hosts (scripts/local_cluster.sh); nothing starts it as a service.
$(SSHD):
ifeq ($(WHEELHOUSE),)
	$(APT_GET) update -q
	$(APT_GET) install -y -q openssh-server
else
	@echo "make install: openssh-server is not installed offline: the multi-host tests will skip"
endif

# Everything make install needs, for a machine without internet: run it where there is internet, with the
# same Python version and CPU architecture, then copy the folder over and run make install WHEELHOUSE=DIR.
WHEELHOUSE_DIR := $(or $(WHEELHOUSE),wheelhouse-$(TF_VARIANT))
wheelhouse:
	mkdir -p $(WHEELHOUSE_DIR)/debs
	$(PYTHON) -m pip download -q -d $(WHEELHOUSE_DIR) pip setuptools wheel "$(TF_PKG)" -r requirements.txt
	$(PYTHON) -m pip download -q -d $(WHEELHOUSE_DIR) --no-deps foolbox==3.3.4
	scripts/install_horovod.sh --download $(WHEELHOUSE_DIR) $(TF_VARIANT)
	cd $(WHEELHOUSE_DIR)/debs && { apt-get download dataset-fashion-mnist || \
	  echo "make wheelhouse: apt-get download dataset-fashion-mnist failed (run apt-get update?); the offline install will train without Fashion-MNIST"; }
	@du -sh $(WHEELHOUSE_DIR)

# train.py picks the faster CPU layout itself (one thread per op, the batch as concurrent sub-batches).
train: install
	$(PY) train.py --problem fashion_mnist --preset fashion_small --logdir logs/fashion_small

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
	VENV=$(VENV) bench/gpu_check.sh

clean-venv:
	rm -rf $(VENV)
