"""`python -m nuclei_tf` runs the `nuclei-tf` command line."""
from nuclei_tf.cli.main import cli

if __name__ == "__main__":
    cli()
