"""Reading run directories, never training: cost measurement of deployed policies (and, later, tables and plots)."""
