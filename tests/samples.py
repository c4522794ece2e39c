"""Connection strings shaped like the ones Neon's Connect dialog gives, for the template's tests."""

from urllib.parse import quote

# Every character that breaks naive URL, shell, .env or config-file handling.
HARD_PASSWORD = "p@ss:w/rd?#%& x'\"$\\"
ENCODED_PASSWORD = quote(HARD_PASSWORD, safe="")
POOLED = (
    f"postgresql://neondb_owner:{ENCODED_PASSWORD}@ep-cool-darkness-a1b2c3d4-pooler"
    ".us-east-2.aws.neon.tech/neondb?sslmode=require&channel_binding=require"
)
DIRECT = POOLED.replace("-pooler", "")
