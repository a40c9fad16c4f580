"""Input files as people save them, turned into rows: CSV and Parquet, columns, cells,
validation.
"""
