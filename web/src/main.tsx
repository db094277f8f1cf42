// Entry point of the web app: applies the chosen theme and mounts the app into the page.
import { render } from 'preact';
import { App } from './components/app.js';
import { applyTheme } from './prefs.js';
import './styles.css';

applyTheme();
render(<App />, document.getElementById('app')!);
