"""Direct-loop references for Theano's conv2d and pool_2d (slow, obviously right), for tests/test_theano_conv.py."""
import numpy as np
def conv_ref(X, W, pad, stride, dil=(1, 1), flip=True):
    if flip: W = W[:, :, ::-1, ::-1]
    ph, pw = pad; sh, sw = stride; dh, dw = dil
    Xp = np.pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    B, C, H, Wd = Xp.shape; O, _, kh, kw = W.shape
    oh = (H - ((kh - 1) * dh + 1)) // sh + 1; ow = (Wd - ((kw - 1) * dw + 1)) // sw + 1
    out = np.zeros((B, O, oh, ow))
    for y in range(oh):
        for x in range(ow):
            patch = Xp[:, :, y*sh:y*sh+(kh-1)*dh+1:dh, x*sw:x*sw+(kw-1)*dw+1:dw]
            out[:, :, y, x] = np.tensordot(patch, W, axes=([1, 2, 3], [1, 2, 3]))
    return out
def pool_ref(X, ws, ib, st, pad, mode):
    H, Wd = X.shape[-2:]
    def n(r, ds, s, p):
        r = r + 2 * p
        if ib: return (r - ds) // s + 1
        if s >= ds: return (r - 1) // s + 1
        return max(0, (r - 1 - ds + s) // s) + 1
    oh, ow = n(H, ws[0], st[0], pad[0]), n(Wd, ws[1], st[1], pad[1])
    Xp = np.pad(X, [(0, 0)] * (X.ndim - 2) + [(pad[0], pad[0]), (pad[1], pad[1])], constant_values=np.nan)
    out = np.zeros(X.shape[:-2] + (oh, ow))
    for y in range(oh):
        for x in range(ow):
            win = Xp[..., y*st[0]:y*st[0]+ws[0], x*st[1]:x*st[1]+ws[1]]
            flat = win.reshape(win.shape[:-2] + (-1,))
            if mode == "max": out[..., y, x] = np.nanmax(flat, -1)
            elif mode == "sum": out[..., y, x] = np.nansum(flat, -1)
            elif mode == "average_exc_pad": out[..., y, x] = np.nanmean(flat, -1)
            else: out[..., y, x] = np.nansum(flat, -1) / (ws[0] * ws[1] if ib else flat.shape[-1])
    return out
