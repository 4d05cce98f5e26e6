"""Billing file readers: each turns one file into canonical raw rows plus rejected rows."""
