"""Traffic evidence as flows: capture readers (capture, decode), packets to Zeek-style
bidirectional flows (table), log readers, writers (records, zeek) and the registry audit of
flows. Readers take streams and return values; the command line opens the files."""
