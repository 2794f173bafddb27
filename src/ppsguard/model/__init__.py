"""The shared model: frozen dataclasses and StrEnums every layer speaks.

Pure: no sockets, no subprocess, no files, no clock (a test enforces the imports).
"""
