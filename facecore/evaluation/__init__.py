"""Measuring verification on labelled data: LFW and image folders, analysis tables, projections."""
