"""API gateway: one entry point for clients, TMS/WMS ingestion and the console."""
