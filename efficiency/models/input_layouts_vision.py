"""Vision layouts the generic rules cannot derive (image pairs, patch layouts of OCR and VLM towers, ...).

Each layout takes an ``InputContext`` and returns a one-line description of what it planned, or None when the model
is not one of its own (see ``efficiency.models.inputs.special_layouts``).
"""

from __future__ import annotations

from efficiency.models.inputs import Layout

LAYOUTS: tuple[Layout, ...] = ()
