"""Renderers from the model to documents: JSON, JSONL, CSV, Markdown, HTML, nmap XML."""
