# s1s2: two commands on a fresh machine.
#   make demo   set up on first use, then run the stack headless and print its numbers
#   make test   set up on first use, then lint + unit + node + system tests
SHELL := /bin/bash
VENV := .venv
ENV := source scripts/env.sh &&
DURATION ?= 60

.PHONY: setup build models demo test lint unit node system bench clean

setup:
	@bash scripts/setup.sh

build: setup

models: setup
	@$(ENV) s1s2 models

demo: setup
	@$(ENV) s1s2 demo --duration $(DURATION)

lint: setup
	@$(ENV) ruff check . && ruff format --check .

test: setup lint
	@$(ENV) python -m pytest tests -p no:cacheprovider

unit: setup
	@$(ENV) python -m pytest tests/unit

node: setup
	@$(ENV) python -m pytest tests/node

system: setup
	@$(ENV) python -m pytest tests/system

bench: setup
	@$(ENV) s1s2 bench

clean:
	rm -rf ros2_ws/build ros2_ws/install ros2_ws/log runs
