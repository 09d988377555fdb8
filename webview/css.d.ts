/** scripts/build.mjs bundles `.css` imports as text (esbuild loader 'text'); the script injects it. */
declare module '*.css' {
  const text: string;
  export default text;
}
