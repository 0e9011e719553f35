/** Time as the API tells it: Unix seconds, and the IMF-fixdate of `Expires` headers. */

/** RFC 9110 §5.6.7 IMF-fixdate, e.g. `Wed, 20 Dec 2023 10:03:31 GMT`. */
export const imfFixdate = (unixSeconds: number) => new Date(unixSeconds * 1000).toUTCString();

export const nowSeconds = () => Math.floor(Date.now() / 1000);
