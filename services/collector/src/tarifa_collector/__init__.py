"""The collector owns sources (PBX links, directories, schedules), the raw CDR archive and per-source watermarks."""
