"""The output documents, built from the model and read back into it: JSON (each with a `schema`
and `version`, its JSON Schema in `schemas/`, a loader; see `documents.py`), JSONL, CSV,
Markdown, HTML, nmap XML, grepable. Pure: values in, text out; printing and files are elsewhere."""
