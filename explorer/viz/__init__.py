"""Pictures and plots: retrieval rows (Pillow and matplotlib over one layout) and embedding projections."""
