"""Tests of mszoo/data."""
