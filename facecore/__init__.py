"""facecore: the face verification engine behind Face Verification Lab.

One path for data: image bytes -> decoded RGB image -> ``Face``s -> aligned 150x150 chips
-> 128-D embeddings -> distances -> decisions. Each step lives in its own module; this
package never imports Streamlit.
"""

__version__ = "0.1.0"
