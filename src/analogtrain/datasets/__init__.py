"""Small data files shipped with analogtrain (the embedded MNIST subset); see README.md here."""
