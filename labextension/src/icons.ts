/**
 * The nbtrace icon: a trace line through three run markers.
 */
import { LabIcon } from '@jupyterlab/ui-components';

const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M3 19.5l5.2-7.3 4.6 3.8L20.6 5l1.4 1-8.8 12.3-4.6-3.8L4.4 20.5z"/>
    <circle cx="8.2" cy="12.2" r="2.3"/>
    <circle cx="12.8" cy="16" r="2.3"/>
    <circle cx="20.6" cy="5" r="2.3"/>
  </g>
</svg>`;

/** The icon of the nbtrace sidebar and commands. */
export const nbtraceIcon = new LabIcon({ name: 'nbtrace:icon', svgstr });
