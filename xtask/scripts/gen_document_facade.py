import re,sys
src=open('/work/main/crates/storage-core/src/document.rs').read()
body=src[src.index('pub trait DocumentStorageBackend'):]
out=[]
# find each async fn with preceding doc comment first line
for m in re.finditer(r'((?:\s*///[^\n]*\n)*)\s*async fn (\w+)\(\s*&self(.*?)\)\s*->\s*(.*?)\s*(;|\{)', body, re.S):
    doc, name, params, ret = m.group(1), m.group(2), m.group(3), m.group(4)
    params = ' '.join(params.split()).strip().lstrip(',').strip().rstrip(',')
    names=[]
    if params:
        depth=0; cur=''; parts=[]
        for ch in params:
            if ch in '<(': depth+=1
            if ch in '>)': depth-=1
            if ch==',' and depth==0: parts.append(cur); cur=''
            else: cur+=ch
        if cur.strip(): parts.append(cur)
        names=[p.split(':')[0].strip() for p in parts]
        params=', '.join(p.strip() for p in parts)
    ret=' '.join(ret.split())
    count = 'ids.len()' if False else '0'
    sig = f"&self, {params}" if params else "&self"
    args=', '.join(names)
    out.append(f"""    /// See [`storage_core::DocumentStorageBackend::{name}`].
    pub async fn {name}({sig}) -> {ret} {{
        let d = self.document()?;
        traced(d.name(), "{name}", 0, d.{name}({args})).await
    }}
""")
print("// Generated from the DocumentStorageBackend trait by xtask/scripts/gen_document_facade.py; edit there.")
print("use storage_core::model::records::*;")
print("use storage_core::{JsonMap, Result, Timestamp};\n")
print("use crate::trace::traced;\nuse crate::UnifiedStorage;\n")
print("/// Record operations, routed to the document backend.\nimpl UnifiedStorage {")
print("\n".join(out).rstrip())
print("}")
