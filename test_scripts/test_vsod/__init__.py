"""VSOD evaluation (DESIGN.md §9): MAE, max F-measure, max E-measure, S-measure."""
