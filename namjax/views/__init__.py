"""Views of attributions: NIV figures, deletion curves and the whole-graph explorer."""
