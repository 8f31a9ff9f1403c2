from dev8.imagebuild.layers import LAYERS, build_args, images_dir


def test_every_layer_has_a_dockerfile_and_readme():
    for layer in LAYERS:
        folder = images_dir() / layer.name
        assert (folder / "Dockerfile").is_file(), layer.name
        assert (folder / "README.md").is_file(), layer.name


def test_layers_chain_through_from_image_and_base_image():
    assert [layer.name for layer in LAYERS] == ["base", "languages", "ide", "workspace"]
    assert build_args(LAYERS[0], "debian:bookworm-slim", {}) == {
        "BASE_IMAGE": "debian:bookworm-slim"
    }
    assert build_args(LAYERS[2], "dev8/languages:latest", {"X": "1"}) == {
        "FROM_IMAGE": "dev8/languages:latest",
        "X": "1",
    }
    for layer in LAYERS[1:]:
        assert "ARG FROM_IMAGE" in (images_dir() / layer.name / "Dockerfile").read_text()
