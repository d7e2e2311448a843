"""`python -m nuclei_tf` runs the `nuclei-tf` command line (its console entry point)."""
from nuclei_tf.cli.main import main

if __name__ == "__main__":
    main()
