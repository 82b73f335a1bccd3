"""Complaint figures (placeholder replaced below)."""
