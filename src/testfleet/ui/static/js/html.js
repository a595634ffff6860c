// The one place the UI gets its view library from: Preact with htm's tagged templates
// (JSX-like markup in plain JavaScript, no build step).
import { h, render, createContext } from "../vendor/preact.mjs";
import htm from "../vendor/htm.mjs";

export const html = htm.bind(h);
export { h, render, createContext };
export {
  useState,
  useEffect,
  useMemo,
  useRef,
  useCallback,
  useContext,
} from "../vendor/preact-hooks.mjs";
