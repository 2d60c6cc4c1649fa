"""placeholder"""

QUERIES = [("where is my parcel", ["article:tracking"], "article")]
