# The hub's make targets. `make chaos`: the fault-injection suite (README,
# Reliability): private PostgreSQL and a three-node RabbitMQ cluster, tens of
# thousands of updates, faults, the exactly-once check; under ten minutes.
# `make chaos-quick`: the same on one node with a few thousand updates.
# Extra options: make chaos CHAOS_ARGS="--updates 40000 --keep".

.PHONY: chaos chaos-quick

chaos: .venv/bin/hub
	.venv/bin/hub chaos $(CHAOS_ARGS)

chaos-quick: .venv/bin/hub
	.venv/bin/hub chaos --quick $(CHAOS_ARGS)

.venv/bin/hub:
	deploy/install.sh
