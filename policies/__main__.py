"""python -m policies: regenerate policies/schema.json from the rule kinds' schemas."""

import json

from policies import SCHEMA_PATH
from policies.schema import json_schema

SCHEMA_PATH.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
print(f"wrote {SCHEMA_PATH}")
