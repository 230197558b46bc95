"""MkDocs hook: the configuration reference, generated from the config schema at build time.

A page holding the marker below gets it replaced by faceparse.config_reference's table, so
the reference always lists exactly the keys workflow/schemas/config.schema.yaml checks.
"""

from faceparse.config_reference import reference_markdown

MARKER = "<!-- config-reference -->"


def on_page_markdown(markdown: str, page, config, files) -> str:
    return markdown.replace(MARKER, reference_markdown()) if MARKER in markdown else markdown
