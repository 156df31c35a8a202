"""The Streamlit app (`litassist ui` runs ui/app.py). The wheel installs this folder as `assistant.ui`."""
