# The two commands of the README. Both install what they need (scripts/setup.sh).
.PHONY: demo test setup down

demo:
	scripts/demo.sh

test:
	scripts/test.sh

setup:
	scripts/setup.sh

down:
	.venv/bin/python -m sandbox down
