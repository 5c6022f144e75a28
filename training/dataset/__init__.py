"""The dataset builder: banks and CSVs → dedup → renders → captions → chain-of-thought → sharded Parquet."""
