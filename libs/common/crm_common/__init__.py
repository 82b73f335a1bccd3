"""Mechanisms shared by every service. No business rules of one service live here."""
