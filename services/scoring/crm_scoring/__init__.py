"""Scoring service: customer value, ABC class, RFM, loyalty, satisfaction, credit, churn and lifetime value."""
