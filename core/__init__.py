"""Person Finder's library: everything the operators and panels call.

Usable from plain Python without the App; heavy libraries (torch,
transformers, ultralytics, google.genai, sklearn, cv2) are imported only by
the functions that need them.
"""
