"""The Streamlit app (`litassist ui` runs ui/app.py); its helper modules import as `ui.*` for the tests."""
