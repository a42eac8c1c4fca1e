# The two commands of the README. Both install what they need (scripts/setup.sh).
.PHONY: demo test docs setup down

demo:
	scripts/demo.sh

test:
	scripts/test.sh

# The manual as a static site in site/ (open site/index.html); only the Python environment is needed.
docs:
	scripts/setup.sh --python
	NO_MKDOCS_2_WARNING=1 .venv/bin/python -m mkdocs build --strict

setup:
	scripts/setup.sh

down:
	.venv/bin/python -m sandbox down
