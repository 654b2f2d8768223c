// plotly.js-cartesian-dist-min ships no types; the renderers use the small surface declared in plotly.ts.
declare module "plotly.js-cartesian-dist-min" {
  const Plotly: unknown;
  export default Plotly;
}
