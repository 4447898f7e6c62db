"""Where images come from: files, folders, globs, animations and video (:mod:`.images`), their descriptors
(:mod:`.descriptors`) and the demo pictures (:mod:`.demo`)."""
