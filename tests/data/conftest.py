"""Fixtures for the data tests."""
import pytest

from tests.data.helpers import write_solid_folder


@pytest.fixture
def solid_folder(tmp_path):
    """An ImageFolder of 3 classes x 5 solid-colour images and the colour of each sample in listing order."""
    root = tmp_path / "solid"
    colors = write_solid_folder(str(root))
    return str(root), colors
