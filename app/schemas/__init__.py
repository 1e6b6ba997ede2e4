"""The HTTP contract's request and response models (pydantic), one module per resource.

Routes, services and the read path all use these; they import nothing from `app.api`."""
